"""Raspberry Pi Pico (RP2040; the Pico W too) board: the pin map and the factories of the
meter's peripherals. Nothing else: main.py composes them into the firmware
(boards/common/mcu.py, firmware/app.py). The wiring table is README.md.

GP numbers are the Pico's pin labels; the REPL is on USB, so both UARTs are free.
"""

from machine import RTC, SPI, UART, Pin, Timer

NAME = "rp2040"
MPY_ARCH = "armv6m"  # mpy-cross -march for viper/native modules (tools/deploy.py)

# -- optical port (IEC 62056-21 probe head: IR LED and phototransistor) on UART0
OPTICAL_UART = 0
OPTICAL_TX = 0  # GP0 (pin 1): IR LED driver
OPTICAL_RX = 1  # GP1 (pin 2): phototransistor
OPTICAL_BAUD = 300  # the IEC 62056-21 sign-on rate, 7E1: firmware/optical.py switches it

# -- RS-485 on UART1 through a MAX3485 (3.3 V) transceiver, DE and /RE tied together
RS485_UART = 1
RS485_TX = 4  # GP4 (pin 6) -> DI
RS485_RX = 5  # GP5 (pin 7) <- RO
RS485_DE = 6  # GP6 (pin 9) -> DE + /RE (high: transmit)
RS485_BAUD = 9600

UART_RXBUF = 512  # the rp2 default is 256; flash writes stall the CPU for tens of ms

# -- metering IC: ATM90E32AS on SPI0, mode 3, <= 1 MHz, chip select from a Pin
METER_CHIP = "atm90e32"
SPI_ID = 0
SPI_SCK = 18  # GP18 (pin 24)
SPI_MOSI = 19  # GP19 (pin 25), SPI0 TX
SPI_MISO = 16  # GP16 (pin 21), SPI0 RX
METER_CS = 17  # GP17 (pin 22)
SPI_BAUD = 1000000
SPI_POLARITY = 1
SPI_PHASE = 1

STATUS_LED = "LED"  # the on-board LED (GP25 on the Pico, through the radio on the Pico W)

# -- filesystem: littlefs mounted at "/" by the port; the meter's records under /data
FS_ROOT = "/"
STORE_ROOT = "/data"

WDT_MS = 8000  # the RP2040 watchdog's maximum is about 8.3 s; it cannot be stopped
MAINTENANCE_TIMER = -1  # a virtual timer feeds the watchdog after Ctrl-C on the console
HDLC_INFO_CAP = 128  # largest HDLC information field the meter accepts/negotiates


def optical_uart():
    return UART(OPTICAL_UART, baudrate=OPTICAL_BAUD, bits=7, parity=0, stop=1,
                tx=Pin(OPTICAL_TX), rx=Pin(OPTICAL_RX), timeout=0, rxbuf=UART_RXBUF)


def rs485():
    from rs485 import HalfDuplex  # firmware/rs485.py: DE high for exactly one frame

    uart = UART(RS485_UART, baudrate=RS485_BAUD, bits=8, parity=None, stop=1,
                tx=Pin(RS485_TX), rx=Pin(RS485_RX), timeout=0, rxbuf=UART_RXBUF)
    return HalfDuplex(uart, Pin(RS485_DE, Pin.OUT, value=0))


def meter_spi():
    return SPI(SPI_ID, baudrate=SPI_BAUD, polarity=SPI_POLARITY, phase=SPI_PHASE, bits=8,
               firstbit=SPI.MSB, sck=Pin(SPI_SCK), mosi=Pin(SPI_MOSI), miso=Pin(SPI_MISO))


def meter_cs():
    return Pin(METER_CS, Pin.OUT, value=1)


def status_led():
    return Pin(STATUS_LED, Pin.OUT, value=0)


def rtc():
    return RTC()


def maintenance_timer():
    return Timer(MAINTENANCE_TIMER)


def filesystem():
    """The directory of the meter's records (created on first boot)."""
    import os

    try:
        os.mkdir(STORE_ROOT)
    except OSError:
        pass  # exists
    return STORE_ROOT
